"""Pure audio plumbing: formats, streaming resampling, framing and playout pacing."""
