"""One module per ``bnplace`` subcommand; ``bnplace.cli`` loads them lazily."""
