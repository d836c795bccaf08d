"""Stage 2, layer attention (SPEC 1.4): what the stage2_<task>.py configs share (not a config).

From the Faceptor-Full stage-1 weights, one target task at a time: the decoder reads layers 12, 2,
4, 6, 8, 10; only the new levels' 1x1 projections and level embeddings train (0.99 M parameters;
the rest, frozen, gets no optimizer state). 1 GPU, batch 64, 20k steps, 2k warm-up, peak 5e-4 on
the new parameters.
"""

from configs import common


def make(task: str):
  config = common.make({task: 64}, {task.split("_")[0]: 1}, total_steps=20000)
  config.model.decoder.new_levels = (2, 4, 6, 8, 10)
  config.optim.trainable = (r"decoder/new_input_proj/.*", r"decoder/new_level_embed")
  config.init_allow_missing = (r"decoder/new_.*",)
  # The Full weights hold every task's queries and heads; this model has one task.
  config.init_allow_unexpected = (r"decoder/query_(feat|embed)/.*", r"classifiers/.*",
                                  r"recognition/.*", r"map/.*", r"value/.*")
  config.eval_every = 500
  config.checkpoint.every = 2000
  return config
