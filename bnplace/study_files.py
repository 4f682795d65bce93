"""The names of the files a study writes in its output folder.

The tuner writes them; ``bnplace export`` and ``check`` read them, and import them from here so
as not to import the tuner (and optuna with it, most of a second) for a few names.
"""

RESULTS = "results.json"
PLOTS = ("accuracy_vs_lr.png", "learning_curves.png")
CHECKPOINTS = "checkpoints"  # the folder of each study's best trial's weights
WINNER_MODEL = "winner.pt"  # torch.save of the model: its class must be importable to load it
WINNER_EXPORTED = "winner.pt2"  # torch.export program: loads with torch alone, for inference
WINNER_STATE_DICT = "winner_state_dict.pt"
WINNER_FILES = (WINNER_STATE_DICT, WINNER_MODEL, WINNER_EXPORTED)
REPORT_FILES = (RESULTS, *PLOTS, *WINNER_FILES)
