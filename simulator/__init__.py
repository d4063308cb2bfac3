"""Sample sources that behave like a province's real ones (docs/sample-sources.md).

Import from the submodules: `simulator.generate.generate`, `simulator.server.serve`.
(A package attribute named like its submodule `generate` would be rebound to the module
whenever the submodule is imported first.)
"""
