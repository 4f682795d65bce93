"""``bnplace lint``: the libcst side. Source -> ordered layer sequences -> rules -> findings -> reports.

``sequences`` reads source into the neutral ``layers.Description``; ``rules`` read only that and
yield ``findings.Finding``; ``output`` formats findings. The graph side can build a Description from
a traced model and reuse the rules and formatters unchanged. Nothing here imports torch.
"""
