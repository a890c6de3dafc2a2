"""What each tab does, gradio-free: plain values in, plain values and figures out; one
module per tab (models, concept, transfer, steer, evaluate)."""
