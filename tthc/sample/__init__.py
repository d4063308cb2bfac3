"""Sample sources that behave like a province's real ones (docs/sample-sources.md).

Import from the submodules: `tthc.sample.generate.generate`, `tthc.sample.server.serve`.
(A package attribute named like its submodule `generate` would be rebound to the module
whenever the submodule is imported first.)
"""
