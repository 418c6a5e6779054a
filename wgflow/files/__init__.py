"""What a run leaves on disk, and how it is kept safe.

- :mod:`wgflow.files.h5md`: the trajectory file (H5MD layout), written frame by frame, read back
  into a :class:`wgflow.Result` (``load``/``save``), readable while a run writes it.
- :mod:`wgflow.files.checkpoints`: atomic checkpoints tied to their run, checked before a resume.
- :mod:`wgflow.files.locks`: one writer per run file or sweep directory.
- :mod:`wgflow.files.records`: the JSON records of the studies that are not sweeps.
"""
