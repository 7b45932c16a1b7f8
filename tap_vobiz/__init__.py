"""tap-vobiz: a Singer tap for the Vobiz WhatsApp Conversations API."""
