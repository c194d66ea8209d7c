"""Exceptions that seqcast raises for bad input and failed training."""


class SeqcastError(ValueError):
    """Invalid input or configuration.

    The message is one line that names the offending value and gives the fix.
    The command line prints it without a traceback and exits with status 2.
    """


class TrainingDivergedError(SeqcastError):
    """Training produced a loss that is NaN or infinite.

    Attributes:
        epoch: the first epoch (counted from 1) whose loss was not finite.
        learning_rate: the learning rate in force during that epoch.
        model_index: the position of the model in its stack, counted from 0.
    """

    def __init__(self, epoch: int, learning_rate: float, model_index: int = 0):
        self.epoch = epoch
        self.learning_rate = learning_rate
        self.model_index = model_index
        super().__init__(
            f"training diverged: the loss became NaN or infinite at epoch {epoch} "
            f"with learning rate {learning_rate:.3g} (model {model_index + 1} of "
            "the stack), so lower the learning rate (--learning-rate) or scale "
            "the series (--scale standard)"
        )
