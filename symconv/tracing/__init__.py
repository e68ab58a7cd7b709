"""The torch side's model readers: convolution modules as layers, and the whole-model profiler."""
