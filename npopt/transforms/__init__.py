"""npopt.transforms"""
