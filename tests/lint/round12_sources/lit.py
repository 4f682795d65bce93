import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn


class LitClassifier(pl.LightningModule):
    def __init__(self, hidden_dim: int = 128, learning_rate: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.l1 = nn.Linear(28 * 28, self.hparams.hidden_dim)
        self.bn1 = nn.BatchNorm1d(self.hparams.hidden_dim)
        self.drop = nn.Dropout(0.2)
        self.l2 = nn.Linear(self.hparams.hidden_dim, 10)
        self.bn2 = nn.BatchNorm1d(10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = self.l1(x)
        x = torch.relu(x)
        x = self.drop(x)
        x = self.bn1(x)
        x = self.l2(x)
        x = self.bn2(x)
        return x

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        loss = F.cross_entropy(y_hat, y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        probs = F.softmax(self(x), dim=1)
        acc = (probs.argmax(dim=1) == y).float().mean()
        self.log("val_acc", acc, prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
        return [optimizer], [scheduler]


if __name__ == "__main__":
    model = LitClassifier()
    trainer = pl.Trainer(max_epochs=1)
