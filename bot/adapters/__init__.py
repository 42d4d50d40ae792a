"""The CometAPI SDK (:mod:`bot.providers.cometapi`) mapped onto the core's ports.

``chat_model``: :class:`~bot.core.ports.ChatModel`. ``task_backend``:
:class:`~bot.core.ports.TaskBackend`, with one module per task family (``midjourney``,
``suno``, ``kling``) and the sentences for failed generations (``failures``). SDK errors
are converted here, ``from exc``; nothing past this package sees an SDK type.
"""
