"""Data: the codebook, validation of the trial and panel tables, the pseudonymised long frame, the simulator."""
