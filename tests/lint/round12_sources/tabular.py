from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class TabularMLP(nn.Module):
    def __init__(self, n_cont: int, emb_szs: Sequence[tuple], layers: List[int], out_sz: int,
                 ps: float = 0.3, use_bn: bool = True):
        super().__init__()
        self.embeds = nn.ModuleList([nn.Embedding(ni, nf) for ni, nf in emb_szs])
        self.emb_drop = nn.Dropout(ps)
        self.bn_cont = nn.BatchNorm1d(n_cont)
        n_emb = sum(nf for _, nf in emb_szs)
        sizes = [n_emb + n_cont] + layers
        self.lins = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.bns = nn.ModuleList([nn.BatchNorm1d(b) for b in sizes[1:]])
        self.drops = nn.ModuleList([nn.Dropout(ps) for _ in sizes[1:]])
        self.out = nn.Linear(sizes[-1], out_sz)

    def forward(self, x_cat, x_cont):
        x = [e(x_cat[:, i]) for i, e in enumerate(self.embeds)]
        x = torch.cat(x, 1)
        x = self.emb_drop(x)
        x_cont = self.bn_cont(x_cont)
        x = torch.cat([x, x_cont], 1)
        for lin, bn, drop in zip(self.lins, self.bns, self.drops):
            x = F.relu(lin(x))
            x = drop(x)
            x = bn(x)
        return self.out(x)
