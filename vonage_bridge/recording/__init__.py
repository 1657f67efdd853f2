"""Call recording: one stereo WAV per media call (left = caller, right = the assistant as the
caller heard it), written off the event loop, and deleted after ``RECORDING_RETENTION_DAYS``.

- ``wav``: the file format, mu-law decoding, the file name of a call (pure);
- ``recorder``: :class:`~.recorder.CallRecorder`, the call engine's hooks and the writer
  thread;
- ``retention``: deleting old recordings.
"""
