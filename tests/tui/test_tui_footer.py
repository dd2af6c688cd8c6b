"""The footer keeps up: after a removal or a new key pair, it lists the keys that
work again (not only quit, help and audit)."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tests.tui_support import open_console, settle, wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.screens.main import MainScreen


def footer_text(pilot: Pilot[None]) -> str:
    footer = pilot.app.screen.query_one(Footer)
    return " ".join(str(w.render()) for w in footer.query("*"))


def footer_says(pilot: Pilot[None], *words: str) -> bool:
    text = footer_text(pilot)
    return all(w in text for w in words)


async def footer_comes_back(pilot: Pilot[None], *words: str) -> None:
    """After a change, the footer lists ``words`` again (within a few seconds)."""
    assert await wait_for(pilot, lambda: footer_says(pilot, *words), timeout=3), \
        footer_text(pilot)


async def remove_provider(pilot: Pilot[None], name: str) -> None:
    """Remove the provider the cursor is on (or whose view is open): d, then its name."""
    await pilot.press("d")
    await settle(pilot)
    await pilot.press(*name, "enter")
    await settle(pilot)


async def test_footer_after_removing_a_consumer_from_its_view(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        assert footer_says(pilot, "Add", "Edit", "Remove")
        await pilot.press("enter")
        await settle(pilot)
        key = services(demo_store).consumers.list()[0].key
        await pilot.press("d", *key, "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        await footer_comes_back(pilot, "Add", "Edit", "Remove")


async def test_footer_after_rotating_the_key(demo_store: Store) -> None:
    async with open_console(demo_store) as (_, pilot):
        await pilot.press("2")
        await settle(pilot)
        assert footer_says(pilot, "Edit", "Export")
        await pilot.press("K", *"rotate", "enter")
        await settle(pilot)
        await footer_comes_back(pilot, "Edit", "Export")


async def test_footer_after_removing_a_provider(demo_store: Store) -> None:
    async with open_console(demo_store) as (_, pilot):
        await pilot.press("3")
        await settle(pilot)
        assert footer_says(pilot, "Add", "Edit", "Remove")
        name = services(demo_store).providers.list()[0].name
        await remove_provider(pilot, name)
        assert len(services(demo_store).providers.list()) == 1
        await footer_comes_back(pilot, "Add", "Edit", "Remove")


async def test_footer_after_removing_a_provider_from_its_view(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("3")
        await settle(pilot)
        name = services(demo_store).providers.list()[0].name
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, MainScreen)
        await remove_provider(pilot, name)
        assert isinstance(app.screen, MainScreen)
        assert len(services(demo_store).providers.list()) == 1
        await footer_comes_back(pilot, "Add", "Edit", "Remove")


async def test_the_footer_is_built_again_only_when_its_keys_change(demo_store: Store) -> None:
    """Moving between a form's fields keeps the footer's keys (Textual's footer builds
    them anew at each focus change); a tab with other keys gets its own."""
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)

        def keys() -> list[FooterKey]:
            return list(pilot.app.screen.query_one(Footer).query(FooterKey))

        await pilot.press("a", "m")
        await settle(pilot)
        before = keys()
        assert [k.action for k in before[:2]] == ["save", "cancel"]
        for _ in range(3):
            await pilot.press("tab")
            await settle(pilot)
        assert app.screen.focused is not None and app.screen.focused.id != "key"
        assert all(a is b for a, b in zip(keys(), before, strict=True))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        consumers = {k.action for k in keys()}
        await pilot.press("2")
        assert await wait_for(pilot, lambda: {k.action for k in keys()} != consumers)
        assert "export" in {k.action for k in keys()}


async def test_footer_keys_are_born_in_the_footers_style(demo_store: Store) -> None:
    """Keys come out in the footer's (not compact) style without being restyled twice,
    the palette's compact as in Textual, and the keys still follow the footer if it
    turns compact."""
    async with open_console(demo_store, size=(100, 30)) as (app, pilot):
        footer = app.screen.query_one(Footer)
        assert await wait_for(pilot, lambda: bool(footer.query(FooterKey)))
        [palette] = footer.query(".-command-palette")
        keys = [k for k in footer.query(FooterKey) if k is not palette]
        assert not footer.compact and keys
        assert all(not k.compact and not k.has_class("-compact") for k in keys)
        assert isinstance(palette, FooterKey)  # Textual's: always compact
        assert palette.compact and palette.has_class("-compact")
        assert " a Add " in footer_text(pilot)  # Textual's padding, not compact
        footer.compact = True
        await settle(pilot)
        assert all(k.compact and k.has_class("-compact") for k in footer.query(FooterKey))
