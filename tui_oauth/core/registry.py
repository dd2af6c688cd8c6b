"""The one factory front doors get services from: :func:`services`.

The dependency is one-way: a service takes the store it works on, and the store
knows nothing of the services.  Each service module is imported when first used
(a CLI command needs one or two of them; the console's first screen, one), and
one set of services is made per store, so that their caches are shared by
everyone using that store.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_oauth.core.services.audit import AuditService
    from tui_oauth.core.services.connect import ConsumerSideService
    from tui_oauth.core.services.consumer_info import ConsumerInfoService
    from tui_oauth.core.services.consumers import ConsumerService
    from tui_oauth.core.services.diagnostics import DiagnosticsService
    from tui_oauth.core.services.doctor import DoctorService
    from tui_oauth.core.services.providers import ServiceProviderService
    from tui_oauth.core.services.refusals import RefusalsService
    from tui_oauth.core.services.tokens import TokenService
    from tui_oauth.core.store import Store


class Services:
    """Every service over one store, each made on first use."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @cached_property
    def consumers(self) -> ConsumerService:
        from tui_oauth.core.services.consumers import ConsumerService

        return ConsumerService(self.store)

    @cached_property
    def consumer_info(self) -> ConsumerInfoService:
        from tui_oauth.core.services.consumer_info import ConsumerInfoService

        return ConsumerInfoService(self.store)

    @cached_property
    def providers(self) -> ServiceProviderService:
        from tui_oauth.core.services.providers import ServiceProviderService

        return ServiceProviderService(self.store)

    @cached_property
    def tokens(self) -> TokenService:
        from tui_oauth.core.services.tokens import TokenService

        return TokenService(self.store)

    @cached_property
    def consumer_side(self) -> ConsumerSideService:
        from tui_oauth.core.services.connect import ConsumerSideService

        return ConsumerSideService(self.store)

    @cached_property
    def audit(self) -> AuditService:
        from tui_oauth.core.services.audit import AuditService

        return AuditService(self.store)

    @cached_property
    def doctor(self) -> DoctorService:
        from tui_oauth.core.services.doctor import DoctorService

        return DoctorService(self.store)

    @cached_property
    def refusals(self) -> RefusalsService:
        from tui_oauth.core.services.refusals import RefusalsService

        return RefusalsService(self.store)

    @cached_property
    def diagnostics(self) -> DiagnosticsService:
        from tui_oauth.core.services.diagnostics import DiagnosticsService

        return DiagnosticsService(self.store)


def services(store: Store) -> Services:
    """The services over ``store`` (made on the first call, then the same ones)."""
    found = store.services_slot
    if isinstance(found, Services):
        return found
    made = Services(store)
    store.services_slot = made
    return made
