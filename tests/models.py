"""Small models shared by the tests (and loaded by path by the command-line tests)."""

from torch import nn


class Tokens(nn.Module):
    """Token ids and a float tensor: two arguments of forward, of two dtypes."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Embedding(50, 8), nn.Linear(8, 4)

    def forward(self, ids, offset):
        return self.head(self.embed(ids) + offset)
