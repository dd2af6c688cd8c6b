"""Pictures of the console for the README: drives the app headless, writes SVG (and PNG).

    .venv/bin/python scripts/screenshots.py [OUTDIR [NAME...]]   (or: make screenshots)

Each picture is taken at 100x30 on a store with fixed sample content
(tui_oauth.tui.demo), so the pictures only change when the console does.
PNG files are made with rsvg-convert (Debian's librsvg2-bin) when it is there.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.keyring_backends import MemoryKeyring  # noqa: E402
from tui_oauth.core.store import open_store  # noqa: E402
from tui_oauth.tui.app import make_app  # noqa: E402
from tui_oauth.tui.demo import DISPLAY_URL, add_demo_refusals, fill_demo_store  # noqa: E402

SIZE = (100, 30)
SHOTS: list[tuple[str, tuple[str, ...]]] = [
    ("consumers", ()),
    ("consumer-detail", ("j", "enter")),
    ("add-by-url", ("a", "u")),
    ("consumer-info", ("2",)),
    ("service-providers", ("3",)),
    ("provider-form", ("3", "a")),
    ("audit", ("l",)),
    ("help", ("question_mark",)),
    ("refusals", ("exclamation_mark", "j", "j", "j", "j")),  # a signature_invalid
]


async def shoot(name: str, presses: tuple[str, ...], outdir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/demo.db", secrets_backend=MemoryKeyring())
        fill_demo_store(store)
        add_demo_refusals(store)
        store.url = DISPLAY_URL
        app = make_app(store)
        async with app.run_test(size=SIZE) as pilot:
            for key in ("", *presses):
                if key:
                    await pilot.press(key)
                for _ in range(3):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
            await pilot.pause(0.2)
            path = Path(app.save_screenshot(f"{name}.svg", str(outdir)))
        store.close()
    return path


def to_png(svg: Path) -> Path | None:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        return None
    png = svg.with_suffix(".png")
    subprocess.run([tool, str(svg), "-o", str(png)], check=True)
    return png


async def main(outdir: Path, only: set[str]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for name, presses in SHOTS:
        if only and name not in only:
            continue
        svg = await shoot(name, presses, outdir)
        png = to_png(svg)
        print(svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg,
              "+ png" if png else "(no rsvg-convert: SVG only)")


if __name__ == "__main__":
    # scripts/screenshots.py [OUTDIR [NAME...]]: only the pictures named, if any
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots",
                     set(sys.argv[2:])))
