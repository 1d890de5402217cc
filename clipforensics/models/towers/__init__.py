"""The vision towers themselves, one module per family; ``backbones`` records what differs between them."""
