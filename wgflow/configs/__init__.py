"""Any problem of the library from a config file.

- :mod:`~wgflow.configs.schema`: the keys of the ``[problem.unit]``, ``[problem.group]`` and
  ``[problem.data]`` tables, the initial laws and ``simulate`` options, and the named presets.
- :mod:`~wgflow.configs.rules`: the rules a value must follow, and values written as TOML.
- :mod:`~wgflow.configs.problems`: the problem, initial particles and expectation of a config.
- :mod:`~wgflow.configs.sources`: the files a config reads, identified by their SHA-256.
- :mod:`~wgflow.configs.examples`: the commented example configs shipped with wgflow (and the
  data sets they read, in ``data/``).

:mod:`wgflow.config` loads, checks and builds a config with them.
"""
