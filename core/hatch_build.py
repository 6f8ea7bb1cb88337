"""Ship the top-level sandbox_images/ inside the wheel (pasar_core/sandbox/_images), so an
installed pasar-core can still build its images. Built from the workspace, they are one level up;
an sdist already carries them under src/pasar_core/sandbox/_images (its force-include)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SandboxImagesHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        images = Path(self.root).parent / "sandbox_images"
        if version == "standard" and (images / "python").is_dir():
            build_data["force_include"][str(images)] = "pasar_core/sandbox/_images"
