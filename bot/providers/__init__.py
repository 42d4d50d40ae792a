"""Clients for the services the bot talks to.

Each provider is an SDK-shaped package that imports nothing from ``bot.*``;
``bot.adapters`` maps them onto the ports the core defines.
"""
