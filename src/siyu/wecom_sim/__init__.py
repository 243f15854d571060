"""The WeCom emulator: the same endpoints, error codes, limits and encrypted callbacks as WeCom."""
