"""Checkpoint readers and converters that need neither torch nor TensorFlow: pytorch_model.bin (restricted
unpickler), tf_model.h5 (h5py), original Google TF checkpoint names; `convert` writes model.safetensors."""
