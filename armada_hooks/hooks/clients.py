"""The clients an ``armada`` connection gives, and who closes them.

Clients passed in belong to the caller. Clients built here (the gRPC ``ArmadaClient``,
one ``ArmadaAsyncIOClient`` per event loop, a Binoculars log client per cluster) are
built on first use from the connection's settings and closed together by
:meth:`ConnectionClients.close` / :meth:`ConnectionClients.aclose`. When the connection
names a ``job_service_target``, the built Armada clients are wrapped in the job service's
status clients (:mod:`armada_hooks.jobservice.status_client`): job statuses come from the
job service, everything else from Armada. Clients passed in are used as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from armada_hooks.channels import OwnedChannels

if TYPE_CHECKING:
    from armada_hooks.hooks.connection import ArmadaConnectionConfig
    from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol


class ConnectionClients:
    """Builds, caches and closes the clients of one connection.

    Thread-safe: worker threads of one triggerer share a hook's synchronous clients (gRPC
    channels are thread-safe), and each is built once.

    :param config: returns the connection's settings (loaded on first use).
    :param client: a synchronous client to use instead of building one.
    :param async_client: likewise, an asyncio client (the caller owns its event loop).
    :param log_client_factory: ``cluster -> LogProtocol | None`` instead of Binoculars
        targets from the connection.
    """

    def __init__(
        self,
        config: Callable[[], ArmadaConnectionConfig],
        client: ArmadaProtocol | None = None,
        async_client: AsyncArmadaProtocol | None = None,
        log_client_factory: Callable[[str], LogProtocol | None] | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self.injected = client is not None  # the sync client was passed in
        self._async_client = async_client
        self._injected_async = async_client is not None
        self._log_client_factory = log_client_factory
        self._log_clients: dict[str, LogProtocol | None] = {}
        self._channels = OwnedChannels()
        self._job_service_channels = OwnedChannels()
        self._building = threading.RLock()  # one build per client, whichever thread asks

    @property
    def sync(self) -> ArmadaProtocol:
        """The synchronous client."""
        with self._building:
            if self._client is None:
                from armada_client.client import ArmadaClient

                config = self._config()
                client: ArmadaProtocol = ArmadaClient(self._channels.open(config.channel_spec()))
                job_service = config.job_service_spec()
                if job_service is not None:
                    from armada_hooks.jobservice.status_client import JobServiceStatusClient

                    channel = self._job_service_channels.open(job_service)
                    client = JobServiceStatusClient(client, channel)
                self._client = client
            return self._client

    @property
    def aio(self) -> AsyncArmadaProtocol:
        """The asyncio client of the running event loop (a new loop gets a new channel)."""
        if self._injected_async:
            return cast("AsyncArmadaProtocol", self._async_client)
        config = self._config()
        channel, new = self._channels.aio(config.channel_spec())
        if new:  # a client per channel: close() drops both, a new loop replaces both
            from armada_client.asyncio_client import ArmadaAsyncIOClient

            client = cast("AsyncArmadaProtocol", ArmadaAsyncIOClient(channel))
            job_service = config.job_service_spec()
            if job_service is not None:
                from armada_hooks.jobservice.status_client import AsyncJobServiceStatusClient

                js_channel, _ = self._job_service_channels.aio(job_service)
                client = AsyncJobServiceStatusClient(client, js_channel)
            self._async_client = client
        return cast("AsyncArmadaProtocol", self._async_client)

    def logs(self, cluster: str) -> LogProtocol | None:
        """The log client of ``cluster``; None when no Binoculars target is configured."""
        with self._building:
            if cluster not in self._log_clients:
                self._log_clients[cluster] = self._build_log_client(cluster)
            return self._log_clients[cluster]

    def _build_log_client(self, cluster: str) -> LogProtocol | None:
        if self._log_client_factory is not None:
            return self._log_client_factory(cluster)
        target = self._config().binoculars_for(cluster)
        if target is None:
            return None
        from armada_hooks.hooks.logs import BinocularsLogClient

        return BinocularsLogClient(self._channels.open(self._config().channel_spec(target)))

    def close(self) -> None:
        """Close what was built here; later calls build anew. Clients passed in stay."""
        self._channels.close()
        self._job_service_channels.close()
        self._log_clients.clear()
        if not self.injected:
            self._client = None
        if not self._injected_async:
            self._async_client = None

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the running loop's asyncio channel."""
        await self._channels.aclose()
        await self._job_service_channels.aclose()
        self.close()
