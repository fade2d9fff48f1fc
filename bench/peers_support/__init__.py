"""Helpers of `bench/peers.py`: installing and driving the peer systems it measures."""
