"""billplane's Stripe provider plugin (distribution `billplane-stripe`)."""
