"""A custom import-linter contract (``[tool.importlinter]`` in pyproject.toml loads it).

``stdlib_only``: the source modules import nothing but the standard library and the project
itself. import-linter's own ``forbidden`` contract needs every forbidden package named, so a
dependency added later would slip past it; this one refuses whatever is not in
:data:`sys.stdlib_module_names`.
"""

from __future__ import annotations

import sys
from typing import Any

from importlinter import Contract, ContractCheck, fields, output

__all__ = ["StdlibOnlyContract"]


class StdlibOnlyContract(Contract):
    """``source_modules`` (packages, descendants included) import only the standard library
    and the root packages."""

    source_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        roots = set(self.session_options["root_packages"])
        found = []
        for source in self.source_modules:  # type: ignore[attr-defined]
            for importer in sorted({source.name} | graph.find_descendants(source.name)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    top = imported.partition(".")[0]
                    if top in roots or top in sys.stdlib_module_names:
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = ", ".join(str(d["line_number"]) for d in details)
                    found.append(f"{importer} -> {imported} (l.{lines})")
        output.verbose_print(verbose, f"Found {len(found)} imports outside the standard library.")
        return ContractCheck(kept=not found, metadata={"imports": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("Imports outside the standard library:")
        output.new_line()
        for line in check.metadata["imports"]:
            output.print_error(f"-   {line}", bold=False)
        output.new_line()
