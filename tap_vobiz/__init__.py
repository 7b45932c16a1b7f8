"""tap-vobiz: a Singer tap for a Vobiz WhatsApp account (conversations, messages, channels,
templates, contacts, canned responses, campaigns and their recipients, call logs)."""
