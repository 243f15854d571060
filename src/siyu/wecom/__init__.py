"""The WeCom gateway: the only module that talks to WeCom (API client, callbacks, inbox)."""
