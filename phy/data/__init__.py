"""Data shipped with phy: the MCS BLER calibration (``mcs_bler_awgn.csv``)."""
