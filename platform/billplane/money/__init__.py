"""Money: integer minor units plus an ISO 4217 currency. No float ever touches an amount."""
