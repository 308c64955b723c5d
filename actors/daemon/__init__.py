"""The program around the engine: the daemon process (``daemon``), its socket server
(``server``), the run store (``store``), logging (``logs``), zero-config discovery
(``defaults``) and the client (``client``). ``python -m actors.daemon`` runs the daemon.

Nothing is imported here: ``orchestrctl`` loads only what it uses.
"""
