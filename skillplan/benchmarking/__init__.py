"""The sample-efficiency and throughput suites behind `skillplan benchmark`."""
