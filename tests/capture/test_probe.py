"""The probe forward pass: which modules run, how often, and how their outputs are read."""

import torch
from torch import nn

from modeldx.capture import hook_count
from modeldx.capture.layers import auto_layers, select_layers
from modeldx.capture.probe import call_counts, probe_calls


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.act = nn.ReLU()
        self.lstm = nn.LSTM(4, 5, batch_first=False)
        self.drop = nn.Dropout(0.0)
        self.attn = nn.MultiheadAttention(5, 1)
        self.unused = nn.Linear(5, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x):  # x: (batch, 3, length)
        h = self.act(self.conv(x))  # a conv map (batch, 4, length - 2)
        seq, _ = self.lstm(h.permute(2, 0, 1))  # time major (length - 2, batch, 5)
        seq = self.drop(seq)
        seq, _ = self.attn(seq, seq, seq)
        return self.head(self.act(seq[-1]))


def test_calls_kinds_and_time_major():
    model = Mixed().eval()
    calls = probe_calls(model, lambda: model(torch.zeros(2, 3, 9)))
    by = {(c.module, c.index): c for c in calls}
    assert call_counts(calls) == {"conv": 1, "act": 2, "lstm": 1, "drop": 1, "attn": 1, "head": 1}
    assert (by["conv", 0].kind, by["act", 0].kind) == ("conv", "conv")
    assert (by["lstm", 0].kind, by["lstm", 0].time_major, by["lstm", 0].shape) == ("sequence", True,
                                                                                 (2, 7, 5))
    assert (by["drop", 0].kind, by["drop", 0].time_major) == ("sequence", True)  # follows the LSTM
    assert (by["attn", 0].kind, by["attn", 0].time_major) == ("sequence", True)
    assert by["act", 1].kind == "dense"
    assert hook_count(model) == 0


def test_overrides_and_selection_by_calls():
    model = Mixed().eval()
    calls = probe_calls(model, lambda: model(torch.zeros(2, 3, 9)), {"conv": "sequence"})
    assert next(c for c in calls if c.module == "conv").kind == "sequence"
    counts = call_counts(calls)
    assert "unused" not in counts
    assert auto_layers(model, counts) == ["act", "head"]
    assert select_layers(model, "auto", counts) == ["act#0", "act#1", "head"]
    assert select_layers(model, nn.Linear, counts) == ["head"]
    assert select_layers(model, ["act#1", "lstm"], counts) == ["act#1", "lstm"]
