"""Cross-dataset transfer (supplement B.3): what the transfer_<task>.py configs share (not a config).

From Faceptor-Base, one new dataset, 20k steps with 2k warm-up, otherwise stage 1's recipe. The
new task's queries start from scratch; the Base weights of the other tasks are not loaded.
"""

from configs import common


def make(task: str, batch_size: int):
  kind = task.split("_")[0]
  config = common.make({task: batch_size}, {kind: 1}, total_steps=20000, warmup_steps=2000)
  config.init_allow_missing = (rf"decoder/query_(feat|embed)/{task}",)
  config.init_allow_unexpected = (r"decoder/query_(feat|embed)/.*", r"classifiers/.*",
                                  r"recognition/.*", r"map/.*", r"value/.*")
  return config
