"""The torch side's ground truth: ones-convolutions, the parameter grid, and validation of every closed form."""
