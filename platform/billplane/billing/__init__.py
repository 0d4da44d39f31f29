"""The billing engine: pricing, billing runs, invoices' lifecycle, dunning and test clocks."""
