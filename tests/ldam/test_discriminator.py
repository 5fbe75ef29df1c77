import torch

from modeldx.ldam import OnlineDiscriminator


def test_the_discriminator_is_seeded_without_touching_the_global_rng(digits):
    reals = digits.get_batch(torch.arange(200).numpy())[0]
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    a = OnlineDiscriminator(reals, seed=5, batch_size=16)
    a.update(torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.random.get_rng_state(), before)
    b, c = OnlineDiscriminator(reals, seed=5), OnlineDiscriminator(reals, seed=6)
    assert torch.equal(b.net.head.weight, OnlineDiscriminator(reals, seed=5).net.head.weight)
    assert not torch.equal(b.net.head.weight, c.net.head.weight)
