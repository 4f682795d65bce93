import torch
from torch import nn


def make_block(c_in, c_out, dropout=0.0):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = make_block(3, 16, 0.1)
        self.block2 = make_block(16, 32, 0.1)
        self.bn = nn.BatchNorm2d(32)

    def forward(self, x):
        return self.block2(self.block1(x))


if __name__ == "__main__":
    net = Tiny()
    out = net(torch.randn(2, 3, 32, 32))
    print(out.shape)
    seq = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20), nn.ReLU(), nn.Linear(20, 2))
    print(seq(torch.randn(4, 10)).shape)
    bn = nn.BatchNorm1d(4)
