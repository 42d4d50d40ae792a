"""The product, platform-neutral. Imports nothing from third-party packages."""
