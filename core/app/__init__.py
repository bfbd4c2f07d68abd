"""The application: what a chat user can do, independent of the platform they use.

Adapters (``bot/``) turn platform updates into a :class:`Person`, a :class:`Place` and bytes or text,
call :class:`MoodtunesService`, and render the :class:`Reply` it returns. Everything a later message or
button press needs is kept in the store, never only in memory.
"""
