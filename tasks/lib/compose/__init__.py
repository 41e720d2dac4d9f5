"""Compose files: read them as compose does, derive the staging twin, check two stacks apart.

One job per module:

* :mod:`.yaml`: the one compose loader (YAML scalars resolved as compose's Go YAML reads them)
  and the matching dumper.
* :mod:`.names`: the staging naming rule (Docker objects and compose keys).
* :mod:`.syntax`: compose short syntax (``a:b:c`` outside ``${...}``, ``KEY=VALUE`` lists).
* :mod:`.ports`: the one reader of port entries (short and long syntax), host ports: which a
  file publishes, which are busy here, staging allocation.
* :mod:`.hostnames`: public hostnames moved under ``staging.<domain>``.
* :mod:`.traefik`: router names, ``Host()`` rules, the URLs a file serves.
* :mod:`.objects`: top-level networks and volumes renamed (and the external ones reported).
* :mod:`.mounts`: service mounts, file secrets and configs (host files shared with prod).
* :mod:`.images`: app images moved to the staging tag.
* :mod:`.generate`: the staging configuration, put together from the above.
* :mod:`.separation`: what two configurations share (project, container names, volumes,
  networks, host ports), for ``staging.compose`` and ``stack.up``/``stack.down``.
* :mod:`.files`: ``docker compose config`` (python-on-whales), diff, atomic write.
* :mod:`.flow`: ``staging.compose`` end to end, returning a result the task renders.
* :mod:`.view`: that rendering.

Public API for other collections: :func:`.yaml.load_compose`, :func:`.yaml.read_compose`,
:func:`.files.compose_config`, :func:`.traefik.traefik_urls`, :func:`.traefik.service_routes`,
:func:`.ports.entry_ports`, :func:`.objects.docker_names`, :func:`.separation.clashes`,
:func:`.separation.shared_volumes`.
"""
