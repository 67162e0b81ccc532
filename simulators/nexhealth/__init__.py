"""NexHealth Synchronizer API simulator (the route to Dentrix, Eaglesoft, Denticon, ...)."""
