"""billplane's sandbox payment provider: a processor simulated locally, with no network and no state.

Installed with billplane and discovered like any third-party plugin (entry point
``billplane.providers: sandbox``). It imports only ``billplane.plugins``, billplane's public plugin
API. Test payment methods: ``billplane_sandbox.payment_methods``; signed webhooks for tests and
demos: ``billplane_sandbox.events``. See docs/plugins/sandbox.md.
"""
