"""The Twilio front door: Voice webhook and TwiML, Media Streams wire format, signature, REST."""
