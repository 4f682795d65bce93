import torch.nn as tnn
from torch.nn import BatchNorm2d as BN, Conv2d as Conv
from torch.nn import Dropout as Drop


class Net(tnn.Module):
    def __init__(self):
        super().__init__()
        self.features = tnn.Sequential(
            Conv(3, 32, 3, padding=1), BN(32), tnn.ReLU(inplace=True),
            Conv(32, 64, 3, padding=1, bias=False), tnn.ReLU(), Drop(0.25), BN(64),
        )
        self.head = tnn.Sequential(tnn.Flatten(), tnn.Linear(64 * 8 * 8, 10), tnn.BatchNorm1d(10),
                                   tnn.Softmax(dim=1))
