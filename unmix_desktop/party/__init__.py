"""Karaoke night (no Qt here): the singer rotation (:mod:`.rotation`), the song catalogue guests
search (:mod:`.catalog`), the service that runs commands on the owner's thread (:mod:`.service`)
and the phone remote web server (:mod:`.server`, aiohttp). The window's host mode lives in
``ui/party_view.py``."""
