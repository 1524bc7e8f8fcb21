def counts_of(circuit):
    return {name: int(count) for name, count in circuit.count_ops().items()}
