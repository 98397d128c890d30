"""Delivery: turning rendered messages into bytes and handing them to a transport."""
