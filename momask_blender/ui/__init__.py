"""What the user touches: properties, preferences, operators and the sidebar's panels. Operators
are thin: they read their inputs and run a job (`..jobs`)."""
