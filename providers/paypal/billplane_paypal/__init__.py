"""billplane's Paypal provider plugin (distribution `billplane-paypal`)."""
